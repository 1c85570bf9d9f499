with

source as (

    select * from {{ source('raw', 'orders') }}

),

renamed as (

    select
        id as order_id,
        customer_id,
        ordered_at,
        cast(ordered_at as date) as order_date,
        lower(status) as status
    from source

)

select * from renamed
